"""BN statistics for export: re-estimation equals the plain average over the batches; drop removes them."""
from collections import OrderedDict

import pytest
import torch
from torch import nn

from clap_plugin.utils.bn_statistics import drop_bn_statistics, recompute_bn_statistics


def test_recompute_is_the_average_over_batches_and_restores_the_module():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3, momentum=0.01))
    net.eval()
    batches = [torch.randn(16, 4) * (i + 1) + i for i in range(5)]
    seen = recompute_bn_statistics(net, batches, lambda x: net(x))
    assert seen == 5
    with torch.no_grad():
        h = [net[0](x) for x in batches]
    mean = torch.stack([x.mean(0) for x in h]).mean(0)
    var = torch.stack([x.var(0, unbiased=True) for x in h]).mean(0)
    assert torch.allclose(net[1].running_mean, mean, atol=1e-5)
    assert torch.allclose(net[1].running_var, var, atol=1e-4)
    assert net[1].momentum == 0.01 and not net.training  # restored
    with pytest.raises(ValueError, match='no batch'):
        recompute_bn_statistics(net, [], lambda x: net(x))


def test_drop_removes_only_the_running_buffers_and_keeps_metadata():
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(2))
    state = net.state_dict()
    out = drop_bn_statistics(state)
    assert set(out) == {'0.weight', '0.bias', '1.weight', '1.bias'}
    assert out._metadata is state._metadata
    assert isinstance(out, OrderedDict)
