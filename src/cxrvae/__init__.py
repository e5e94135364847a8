"""cxrvae: convolutional VAEs for chest X-rays, and what their latent spaces learned.

The Python API mirrors the command line, with the same defaults::

    import cxrvae

    data = cxrvae.load("pneumoniamnist")             # XrayData: uint8 images, labels, notes
    run = cxrvae.run_study("pneumoniamnist", "runs/pm")  # train, analyse, report -> Run
    run.metrics["models"]["16"]["test_loss"]
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
    "XrayData": "data",
    "load": "data",
    "load_npz": "data",
    "load_folder": "data",
    "export_npz": "data",
    "split_indices": "split",
    "synthetic_xrays": "synthetic",
    "ConvVAE": "model",
    "vae_loss": "model",
    "fit": "train",
    "save_model": "train",
    "load_model": "train",
    "encode": "latent",
    "decode": "latent",
    "reconstruct": "latent",
    "build_report": "report",
    "build_explorer": "explorer",
    "Run": "runfolder",
    "open_run": "runfolder",
    "run_study": "study",
    "train_study": "study",
    "analyze_study": "study",
}

__all__ = ["__version__", *_EXPORTS, "figures", "latent"]


def __getattr__(name):
    import importlib

    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in ("figures", "latent"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cxrvae' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
