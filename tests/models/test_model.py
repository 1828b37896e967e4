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


def parameters(model: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def test_wide_resnet_28_10_has_the_papers_parameter_count():
    from infomatch.models import WideResNet

    # 36,479,194 for CIFAR-10: the count the WRN-28-10 reimplementations report (36.5M in the paper)
    assert parameters(WideResNet(10, depth=28, widen_factor=10)) == 36_479_194


def test_preact_resnet18_has_resnet18s_count_less_the_moved_norms():
    from infomatch.models import PreActResNet18

    # the common CIFAR PreActResNet18 (no final BN) has 11,171,146 parameters at 10 classes; the paper's network
    # ends with BN-ReLU, 2 x 512 more
    assert parameters(PreActResNet18(10)) == 11_171_146 + 1024


def test_the_networks_take_any_image_size_and_refuse_an_impossible_depth():
    import pytest

    from infomatch.models import PreActResNet18, WideResNet
    from infomatch.utils.checks import SettingError

    for model in (PreActResNet18(7, width=4), WideResNet(7, depth=10, widen_factor=1, width=4)):
        assert model(torch.rand(2, 3, 64, 48)).shape == (2, 7)
    with pytest.raises(SettingError, match="depth=27 must be 6n"):
        WideResNet(10, depth=27)
