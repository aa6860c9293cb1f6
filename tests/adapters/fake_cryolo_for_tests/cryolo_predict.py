#!/usr/bin/env python3
"""TEST DOUBLE for crYOLO 1.9's cryolo_predict.py (stdlib only; never a real crYOLO).

For every image in -i it writes CBOX/<name>.cbox in crYOLO 1.9's layout (as pyStarDB writes
it) with two fixed picks, centres (row, col) = (32, 40) at confidence 0.2 and (80, 90) at 0.7,
in crYOLO's own frame: lower-left corner, y counted from the bottom of the array crYOLO reads,
which for MRC input (flipped on reading) is the top of mrcfile's array. The real crYOLO's
convention is checked in tests/adapters/test_cryolo_real.py; this double only mirrors it.
FAKE_CRYOLO_CRASH=1 fails; FAKE_CRYOLO_MALFORMED=1 writes a broken line into each file;
FAKE_CRYOLO_SKIP=name leaves out that image's file.
"""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser(prog="cryolo_predict.py")
parser.add_argument("-c", "--conf", required=True)
parser.add_argument("-w", "--weights", required=True)
parser.add_argument("-i", "--input", nargs="+", required=True)
parser.add_argument("-o", "--output", required=True)
parser.add_argument("-t", "--threshold", type=float, default=0.3)
parser.add_argument("--write_empty", action="store_true")
parser.add_argument("-g", "--gpu", nargs="+")
parser.add_argument("-nc", "--num_cpu", type=int)
args = parser.parse_args()

print("fake cryolo_predict.py", " ".join(sys.argv[1:]))
if os.environ.get("FAKE_CRYOLO_CRASH"):
    print("Segmentation fault (core dumped)", flush=True)
    sys.exit(139)
with open(args.weights) as handle:
    box = json.load(handle)["box_size"]

HEADER = """
data_global

_cbox_format_version 1.0

data_cryolo

loop_
_CoordinateX #1
_CoordinateY #2
_CoordinateZ #3
_Width #4
_Height #5
_Depth #6
_EstWidth #7
_EstHeight #8
_Confidence #9
_NumBoxes #10
_Angle #11
"""
FOOTER = """
data_cryolo_include

loop_
_slice_index #1
"""

os.makedirs(os.path.join(args.output, "CBOX"), exist_ok=True)
for folder in args.input:
    for filename in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(filename)
        if ext.lower() not in (".tif", ".tiff", ".mrc") or stem == os.environ.get("FAKE_CRYOLO_SKIP"):
            continue
        rows = []
        for row, col, confidence in ((32, 40, 0.2), (80, 90, 0.7)):
            if confidence < args.threshold:
                continue
            # crYOLO flips MRC images on reading; the fake test images are 128 rows high.
            y = (row if ext.lower() == ".mrc" else 128 - row) - box / 2
            x = col - box / 2
            rows.append(f"{x:.6f}\t{y:.6f}\t<NA>\t{box}\t{box}\t<NA>\t{box - 4}\t{box - 4}\t"
                        f"{confidence:.6f}\t<NA>\t<NA>")
        if os.environ.get("FAKE_CRYOLO_MALFORMED"):
            rows.append("12.0\tnot-a-number\t<NA>\t10\t10\t<NA>\t8\t8\t0.5\t<NA>\t<NA>")
        with open(os.path.join(args.output, "CBOX", stem + ".cbox"), "w") as handle:
            handle.write(HEADER + "".join(r + "\n" for r in rows) + FOOTER)
