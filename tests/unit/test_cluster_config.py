"""cluster.yaml passes Ray's own validation of cluster-launcher configs."""

from __future__ import annotations

import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from reelwire.config import REPO_ROOT


def test_cluster_yaml_is_valid_for_ray():
    config = yaml.safe_load((REPO_ROOT / "cluster.yaml").read_text())
    # prepare_config fills in Ray's defaults, as `ray up` does before validating.
    validate_config(prepare_config(config))
    assert config["provider"]["type"] == "local"
    assert len(config["provider"]["worker_ips"]) == config["max_workers"]
    commands = " ".join(config["head_start_ray_commands"])
    assert "ray start --head" in commands
    assert "reelwire up" in commands
    assert any("pip install" in command and "reelwire" in command for command in config["setup_commands"])
