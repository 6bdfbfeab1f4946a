"""The fast paths give the results of the plain ones: feature cache, compilation, precision, CPU depthwise convs."""

import pytest
import torch

from asdbench import runtime as runtime_module
from asdbench.build import build_model, instantiate
from asdbench.cache import cache_dir
from asdbench.config import resolve
from asdbench.data.plan import load_dataset, make_plan
from asdbench.plugins import build_plugins
from asdbench.progress import Reporter
from asdbench.runtime import resolve_precision, resolve_runtime
from asdbench.training import step as step_module
from asdbench.training.runner import execute
from asdbench.training.step import Objective, train_step
from support import CountingDataset
from support import tiny_model as _tiny_model


def _entries(kind: str) -> set[str]:
    folder = cache_dir() / kind
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")} if folder.exists() else set()


def test_features_are_computed_once_across_runs_and_a_frontend_change_invalidates():
    plugins = build_plugins()
    counting = CountingDataset(load_dataset(plugins, resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny"})))
    base = {"dataset.size": "tiny", "epochs": 1, "clip_seconds": 0.625}

    def run(**values):
        cfg = resolve_runtime(resolve(plugins, "dcase-ae", set_values={**base, **values}))
        return [s for _, s in execute(plugins, make_plan(plugins, cfg, counting), Reporter()).scores]

    before = _entries("features")
    first = run()
    created = _entries("features") - before
    assert len(created) == 4  # train and test clips of two machine types
    loads = counting.loads
    assert run() == first and counting.loads == loads and _entries("features") - before == created
    run(**{"frontend.frames": 4})  # another frontend setting: new features, from the cached waves
    assert len(_entries("features") - before - created) == 4 and counting.loads == loads



def _steps(model, objective, n=2):
    torch.manual_seed(1)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(4, 4000) * 0.1, torch.tensor([0, 1, 2, 0])
    return [train_step(model, optimizer, x, y, False, None, objective=objective)[0].item() for _ in range(n)]


def test_a_failing_compile_says_so_once_and_trains_on_eagerly(monkeypatch):
    def broken_compile(fn, **_):
        def run(*args, **kwargs):
            raise RuntimeError("no working C++ compiler\nlong details")
        return run

    eager = _steps(_tiny_model(), None)
    monkeypatch.setattr(step_module.torch, "compile", broken_compile)
    messages: list[str] = []
    model = _tiny_model()
    objective = Objective(model, compile=True, warn=messages.append)
    assert objective.compiled
    assert _steps(model, objective) == pytest.approx(eager, rel=1e-6)
    assert not objective.compiled
    assert messages == ["torch.compile failed (RuntimeError: no working C++ compiler); training goes on without it"]


@pytest.mark.slow
def test_a_compiled_step_matches_the_eager_step():
    eager = _steps(_tiny_model(), None)
    model = _tiny_model()
    objective = Objective(model, compile=True, warn=pytest.fail)
    compiled = _steps(model, objective)
    assert objective.compiled
    assert compiled[0] == pytest.approx(eager[0], rel=1e-5)  # same weights: same loss
    assert compiled[1] == pytest.approx(eager[1], rel=1e-2)  # after an Adam step on gradients fused differently


def test_auto_precision_is_bf16_exactly_where_the_hardware_has_it(monkeypatch):
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert resolve_precision("auto", cpu) == "bf16"


@pytest.mark.parametrize("size", [(64, 157), (33, 20), (8, 9)])
def test_cpu_depthwise_conv_computes_the_strided_convolution(size):
    from asdbench_plugins.backbones.mobilefacenet import DepthwiseConv2d

    torch.manual_seed(0)
    fast = DepthwiseConv2d(8, 8, 3, 2, 1, groups=8, bias=False)
    fast.shortcut = True  # the unstrided-then-subsampled computation, which compiled CPU steps take
    reference = torch.nn.Conv2d(8, 8, 3, 2, 1, groups=8, bias=False)
    reference.load_state_dict(fast.state_dict())
    x = torch.randn(2, 8, *size, requires_grad=True)
    out_fast, out_ref = fast(x), reference(x)
    assert out_fast.shape == out_ref.shape
    torch.testing.assert_close(out_fast, out_ref)
    grads_fast = torch.autograd.grad(out_fast.square().sum(), (x, fast.weight))
    grads_ref = torch.autograd.grad(out_ref.square().sum(), (x, reference.weight))
    for a, b in zip(grads_fast, grads_ref):  # weight gradients sum thousands of terms, in another order
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_depthwise_shortcut_is_taken_only_in_compiled_cpu_steps(monkeypatch):
    """Measured slower in eager steps (benchmarks/depthwise_shortcut.py): eager runs the strided kernel itself."""
    import torch.nn.functional as F

    from asdbench_plugins.backbones.mobilefacenet import DepthwiseConv2d

    strides = []
    real = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *args, **kwargs: strides.append(args[3]) or real(*args, **kwargs))
    conv, x = DepthwiseConv2d(8, 8, 3, 2, 1, groups=8, bias=False), torch.randn(1, 8, 16, 16)
    conv(x)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    conv(x)
    assert strides == [(2, 2), 1]  # eager: nn.Conv2d's strided call; compiling: stride 1, then subsampled


def test_compile_auto_counts_the_models_operations_instead_of_timing_it():
    """dcase-ae's 2020 autoencoder on one 640-wide frame vector: 2 x (640x128 + 3x128x128 + 128x8 + 8x128 + 3x128x128
    + 128x640) multiply-adds; its nominal eager time follows from that alone."""
    from asdbench.data.examples import Examples
    from asdbench.training import compile_rule

    plugins = build_plugins()
    cfg = resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny"})
    frontend = instantiate(plugins, cfg, "frontend", sample_rate=16000, num_samples=16000)
    model, _ = build_model(plugins, cfg, frontend, (640,), 1)
    data = Examples(torch.randn(1000, 640), torch.zeros(1000, dtype=torch.long), features_ready=True)
    assert compile_rule.forward_flops(model, data) == 2 * (2 * 640 * 128 + 6 * 128 * 128 + 2 * 128 * 8) == 528384
    cpu = torch.device("cpu")
    choice = compile_rule.choose("auto", model, data, 100, cpu, 2)
    assert choice.eager_seconds == pytest.approx(3 * 528384 * 1000 * 100 / 40e9) and not choice.compiled
    assert compile_rule.choose("auto", model, data, 100_000, cpu, 2).compiled  # 396 min nominally
    assert not compile_rule.choose("auto", model, data, 100_000, cpu, 2000).compiled  # 0.4 min on 2000 threads
    assert compile_rule.choose(True, model, data, 1, cpu, 2).compiled and model.training


@pytest.mark.parametrize("min_seconds, compiled", [(0.0, [1.0, 1.0, 1.0]), (1e9, [0.0, 0.0, 0.0])])
def test_compile_auto_decides_before_training_and_never_from_the_clock(monkeypatch, min_seconds, compiled):
    """A busy machine (every clock reading 1,000 s after the last) decides as an idle one: the first epoch's wall
    time once made one command compile or not depending on load."""
    from asdbench.training import compile_rule
    from asdbench.training import loop as train_module

    compiles: list[object] = []
    monkeypatch.setattr(step_module.torch, "compile", lambda fn, **_: compiles.append(fn) or fn)  # no real compile
    monkeypatch.setattr(compile_rule, "MIN_EAGER_SECONDS", min_seconds)
    clock = iter(range(0, 10**9, 1000))
    monkeypatch.setattr(train_module.time, "perf_counter", lambda: float(next(clock)))
    plugins = build_plugins()
    cfg = resolve_runtime(resolve(plugins, "dcase-ae", set_values={"dataset.size": "tiny", "epochs": 3,
                                                                    "clip_seconds": 0.625, "model_per": "all"}))
    assert cfg["compile"] == "auto"
    seen: list[float] = []
    execute(plugins, make_plan(plugins, cfg), Reporter(), lambda g, e, stats: seen.append(stats["compiled"]))
    assert seen == compiled and len(compiles) == int(compiled[-1])


def test_channels_last_auto_follows_device_and_compilation_and_explicit_values_stay():
    from asdbench.runtime import prepare

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert [runtime_module.channels_last_for("auto", d, c) for d in (cpu, cuda) for c in (False, True)] == [
        True, True, True, False]  # as measured: NCHW only for compiled steps on the GPU
    assert not runtime_module.channels_last_for(False, cpu, False) and runtime_module.channels_last_for(True, cuda, True)
    model = _tiny_model()
    weight = next(p for p in model.backbone.parameters() if p.dim() == 4)
    prepare(model, cpu, "auto")
    assert weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    prepare(model, cpu, False)  # converted back in place: the same parameter, as the optimizer holds it
    assert weight.is_contiguous() and weight is next(p for p in model.backbone.parameters() if p.dim() == 4)
    with pytest.raises(Exception, match="compile='maybe' is not one of: true, false, auto"):
        resolve(build_plugins(), "stgram-mfn", set_values={"compile": "maybe"})


def test_a_frontend_probes_its_output_shape_where_its_tensors_are():
    frontend = build_plugins().registry("frontend").get("logmel").factory(16000, 16000)
    assert frontend.output_shape(16000) == frontend.to("meta").output_shape(16000) == (1, 128, 32)
