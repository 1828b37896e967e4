"""The YAML configs, importable as infomatch.configs (src/infomatch/configs links here) for the installed commands."""
