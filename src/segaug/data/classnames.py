"""Class names of the built-in datasets, importable without numpy (the workflow checks
config class names against them before any job runs)."""

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)

DEMO_CLASSES = ("grass", "road", "water", "building", "tree", "car", "boat")

VAIHINGEN_CLASSES = ("impervious surfaces", "building", "low vegetation", "tree", "car", "clutter")

BUILTIN = {"voc": VOC_CLASSES, "demo": DEMO_CLASSES, "vaihingen": VAIHINGEN_CLASSES}
