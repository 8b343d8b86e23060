"""The shared training and inference engine of the built-in baselines.

Modules (import them directly; this package imports nothing heavy):

* :mod:`.models` - 3D U-Net, V-Net, CNN regressor;
* :mod:`.losses` - Dice, Tversky, BCE, focal, weighted cross-entropy;
* :mod:`.data` - binning, normalisation, sphere targets, :class:`~.data.PatchDataset`;
* :mod:`.training` - :func:`~.training.train_model` (AdamW, schedules, AMP, early stopping);
* :mod:`.inference` - :func:`~.inference.sliding_window_predict` (MONAI, Gaussian blending);
* :mod:`.postprocess` - peaks, component centroids, 3D NMS, threshold tuning on validation runs;
* :mod:`.segmentation` - :class:`~.segmentation.SegmentationMethod`, the pipeline of the
  segmentation baselines (torch imported only when fitting or predicting);
* :mod:`.fakes` - small in-memory runs for tests and benchmarks.
"""
