"""Constants of the canonical dataset layout, in one place (standard library only).

``IGNORE_INDEX``: the label value of pixels that count for nothing (VOC's void border);
``IMAGE_EXTS``: the image files a dataset may hold, in the order an id's image is looked for.
"""

IGNORE_INDEX = 255
IMAGE_EXTS = (".jpg", ".jpeg", ".png")
