"""Runs inside crYOLO's own environment (Python 3.7): crYOLO's reader, parser and writers.

Used by test_cryolo_real.py to check lipobench's row convention against crYOLO 1.9.9's code,
never lipobench's idea of it. Two commands, each printing one JSON document:

``parse IMAGE ANNOTATION [IMAGE ANNOTATION ...]``
    crYOLO's training parser (``preprocessing.parse_annotation``) on each pair; for every
    box it builds, the value of crYOLO's image array (``imagereader.image_read``) at the
    box's centre.
``write IMAGE OUT BOX_SIZE``
    finds the particles (pixels above half the maximum) in crYOLO's image array, turns each into the
    relative box the network would output, passes it through ``predict.rescale`` and writes
    it with crYOLO's own CBOX, EMAN ``.box`` and STAR writers under OUT.
"""
import json
import os
import sys

import numpy as np
from scipy import ndimage


def parse(pairs):
    from cryolo import imagereader, preprocessing

    parsed = preprocessing.parse_annotation(pairs)
    result = {}
    for image in parsed["images"]:
        array = imagereader.image_read(image["filename"])
        values = []
        for box in image["object"]:
            row = int((box["ymin"] + box["ymax"]) / 2)
            col = int((box["xmin"] + box["xmax"]) / 2)
            values.append(float(array[row, col]))
        result[os.path.basename(image["filename"])] = values
    return result


def write(image_path, out, box_size):
    from cryolo import CoordsIO, imagereader, predict
    from cryolo.utils import BoundBox

    array = imagereader.image_read(image_path)
    height, width = array.shape
    labels, count = ndimage.label(array > array.max() / 2)
    boxes = []
    for row, col in ndimage.center_of_mass(np.ones_like(array), labels, range(1, count + 1)):
        # What the network outputs: centre and size relative to the image crYOLO read.
        box = BoundBox(x=(col + 0.5) / width, y=(row + 0.5) / height, w=box_size / width,
                       h=box_size / height, c=0.9)
        box.meta["boxsize_estimated"] = (box_size, box_size)
        boxes.append(predict.rescale(box, height, width))
    stem = os.path.splitext(os.path.basename(image_path))[0]
    for folder in ("CBOX", "EMAN", "STAR"):
        os.makedirs(os.path.join(out, folder), exist_ok=True)
    CoordsIO.write_cbox_file(os.path.join(out, "CBOX", stem + ".cbox"), boxes)
    CoordsIO.write_eman1_boxfile(os.path.join(out, "EMAN", stem + ".box"), boxes)
    CoordsIO.write_star_file(os.path.join(out, "STAR", stem + ".star"), boxes)
    return {"particles": count}


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "parse":
        print(json.dumps(parse(list(zip(args[0::2], args[1::2])))))
    else:
        print(json.dumps(write(args[0], args[1], float(args[2]))))
