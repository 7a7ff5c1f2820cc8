"""Class names of the built-in datasets (PASCAL VOC, the demo, ISPRS Vaihingen), standard
library only: the class tables of :mod:`segaug.data.class_tables` are built from them when the
workflow starts."""

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
