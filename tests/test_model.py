import torch
import torchvision

from infomatch.models import ResNet18


def cifar_torchvision_resnet18(num_classes: int = 100) -> torch.nn.Module:
    """The usual CIFAR adaptation of torchvision's resnet18, as the reference scripts build it."""
    model = torchvision.models.resnet18(num_classes=num_classes)
    model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()
    return model


def test_torchvision_state_dict_loads_and_computes_the_same_function():
    reference = cifar_torchvision_resnet18().eval()
    ours = ResNet18(num_classes=100, width=64).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(ours(x), reference(x))


def test_width_scales_channels_and_keeps_output_shape():
    model = ResNet18(num_classes=10, width=8)
    assert model.conv1.out_channels == 8 and model.fc.in_features == 64
    assert model(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert model(torch.randn(1, 3, 40, 24)).shape == (1, 10)


def test_channels_last_only_where_its_kernels_are_safe():
    import torch

    from infomatch.utils.precision import channels_last_is_safe, cpu_flags
    assert channels_last_is_safe(torch.device("cuda"), set())
    assert channels_last_is_safe(torch.device("cpu"), cpu_flags("flags : fpu avx2 avx512f amx_bf16\n"))
    # AVX2-only CPUs: oneDNN's channels_last kernels hung or crashed there at width 4
    assert not channels_last_is_safe(torch.device("cpu"), cpu_flags("flags : fpu avx avx2\n"))
