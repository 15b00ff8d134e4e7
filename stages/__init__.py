"""The pipeline's stages, each run by DVC as `python -m stages.<name>` (dvc.yaml): each
reads its params, calls the library (the `classifier` package) and writes its outputs."""
