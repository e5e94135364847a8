"""cxrvae: convolutional VAEs for chest X-rays, and what their latent spaces learned.

The Python API mirrors the command line, with the same defaults::

    import cxrvae

    data = cxrvae.load("pneumoniamnist")             # XrayData: uint8 images, labels, notes
    run = cxrvae.run_study("pneumoniamnist", "runs/pm")  # train, analyse, report -> Run
    run.metrics.models[16].test_loss
    cxrvae.figures.plot_history_comparison({k: run.history(k) for k in run.latent_dims})

Names are imported on first use, so ``import cxrvae`` stays quick.
"""

__version__ = "0.1.0"

_EXPORTS = {
    "RunConfig": "config",
    "load_config": "config",
    "DataConfig": "config",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "AnalysisConfig": "config",
    "DataError": "errors",
    "XrayData": "data.xray",
    "load": "data.loader",
    "load_npz": "data.loader",
    "load_folder": "data.loader",
    "export_npz": "data.xray",
    "split_indices": "data.split",
    "synthetic_xrays": "data.synthetic",
    "ConvVAE": "train.model",
    "vae_loss": "train.model",
    "fit": "train.loop",
    "save_model": "train.checkpoints",
    "load_model": "train.checkpoints",
    "encode": "analysis.latent",
    "decode": "analysis.latent",
    "reconstruct": "analysis.latent",
    "build_report": "report.page",
    "build_explorer": "report.explorer",
    "Run": "finished",
    "open_run": "finished",
    "score_study": "finished",
    "run_study": "study",
    "train_study": "study",
    "analyze_study": "study",
}
_MODULES = {"figures": "figures", "latent": "analysis.latent"}  # cxrvae.latent: earlier name

__all__ = ["__version__", *_EXPORTS, *_MODULES]


def __getattr__(name):
    import importlib

    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{_MODULES[name]}", __name__)
    raise AttributeError(f"module 'cxrvae' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
