"""The analysis step: models analysed at once in worker processes give what they give in turn
(t-SNE pinned to its threads gives the same maps; torch's thread count moves only the last
digits, also with two processes on two cores, whose t-SNE threads wait asleep), and the plan
is the training's."""

import shutil

import numpy as np
import pytest

from cxrvae import outputs
from cxrvae.analysis import all_models
from cxrvae.analysis.latent import TSNE_THREADS
from cxrvae.analysis.sampling import draw_sample
from cxrvae.config import RunConfig
from cxrvae.data.loader import load_data
from cxrvae.results import to_dict
from cxrvae.runfolder import read_config, read_split
from cxrvae.train.parallel import Plan


def _flat(tree, where=""):
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{where}{key}.").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{where}{i}.").items()}
    return {where: tree}


@pytest.mark.processes
def test_models_analysed_at_once_match_those_analysed_in_turn(study_copy, tmp_path):
    _, out = study_copy
    other = tmp_path / "other"
    shutil.copytree(out, other)
    cfg, source = read_config(out)
    data = load_data(source, cfg.data)
    # a lighter analysis than the run's: what is compared is the same either way
    cfg = cfg.replace(analysis={"n_samples": 40, "n_likelihood": 20, "n_importance": 4,
                                "n_init": 2, "k_range": (2, 3), "n_between": 3})  # fmt: skip
    results = {}
    # both models at once, one torch thread each: their 2 x 2 t-SNE threads share the cores
    for folder, plan in ((out, None), (other, Plan(["cpu"] * 2, 1))):
        sample = draw_sample(data, cfg, folder, *read_split(folder))
        results[folder] = all_models.analyze_models(folder, sample, [2, 4], "cpu", plan)
    for k in (2, 4):
        a, b = (results[f][k][0] for f in (out, other))
        np.testing.assert_array_equal(a.clusters, b.clusters)
        np.testing.assert_allclose(a.mu, b.mu, rtol=1e-5, atol=1e-6)
        flat_a, flat_b = _flat(to_dict(a.metrics)), _flat(to_dict(b.metrics))
        assert flat_a.keys() == flat_b.keys()
        for key, value in flat_a.items():
            if isinstance(value, float):
                assert flat_b[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
            else:
                assert flat_b[key] == value, key
        with np.load(outputs.model_dir(out, k) / outputs.EMBEDDING) as e1:
            with np.load(outputs.model_dir(other, k) / outputs.EMBEDDING) as e2:
                np.testing.assert_array_equal(e1["tsne"], e2["tsne"])  # the same map
    assert not (other / outputs.IMAGES).exists()  # the shared copy of the images is removed


def test_the_analysis_plan_is_the_training_plan_and_t_sne_threads_wait_asleep(monkeypatch):
    from types import SimpleNamespace

    from cxrvae.train.workers import waiting_policy

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cfg = RunConfig().replace(train={"device": "cpu"})
    data = SimpleNamespace(images=np.zeros((5840, 64, 64), np.uint8), image_size=64)
    for cpus, expected, env in (
        (2, Plan(["cpu"] * 3, 1), {"OMP_WAIT_POLICY": "PASSIVE"}),  # 6 t-SNE threads, 2 cores
        (4, Plan(["cpu"] * 3, 1), {"OMP_WAIT_POLICY": "PASSIVE"}),
        (16, Plan(["cpu"] * 3, 5), {}),
    ):
        monkeypatch.setattr(all_models.workers, "cpu_count", lambda c=cpus: c)
        plan = all_models.plan_analysis(cfg, 3, data, 4672)
        assert plan == expected, cpus
        # Where the processes' t-SNE threads outnumber the cores, they wait asleep.
        assert (3 * TSNE_THREADS > cpus) == bool(waiting_policy(plan.threads))
        assert waiting_policy(plan.threads) == env, cpus
    assert TSNE_THREADS == 2
    monkeypatch.setattr(all_models.workers, "cpu_count", lambda: 16)
    assert all_models.plan_analysis(cfg, 3, data, 4672, parallel=False) is None
    assert all_models.plan_analysis(cfg, 3, data, 100) is None  # where training is too short too
