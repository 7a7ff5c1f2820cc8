"""Training and evaluation: smp models, losses, the MMSegmentation VOC recipe on Lightning.

Submodules (imported lazily so that light users do not pay for Lightning):
``models`` (create_model), ``losses`` (create_loss), ``transforms`` (the VOC pipeline),
``data`` (SegDataset, StreamSampler), ``module`` (SegModule), ``loop`` (train) and
``evaluate`` (evaluate).
"""
