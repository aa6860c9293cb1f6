#!/usr/bin/env python3
"""TEST DOUBLE for crYOLO 1.9's cryolo_train.py (stdlib only; never a real crYOLO).

Checks the configuration the way crYOLO would need it, then writes a stand-in weights file.
FAKE_CRYOLO_CRASH=1 makes it fail like a crashing TensorFlow run.
"""
import argparse
import json
import os
import sys

parser = argparse.ArgumentParser(prog="cryolo_train.py")
parser.add_argument("-c", "--conf", required=True)
parser.add_argument("-w", "--warm_up", type=int, required=True)
parser.add_argument("-e", "--early", type=int, default=10)
parser.add_argument("-g", "--gpu", nargs="+")
parser.add_argument("-nc", "--num_cpu", type=int)
parser.add_argument("--seed", type=int, default=10)
parser.add_argument("--fine_tune", action="store_true")
args = parser.parse_args()

print("fake cryolo_train.py", " ".join(sys.argv[1:]))
print("PYTHONPATH=" + os.environ.get("PYTHONPATH", "<unset>"))
if os.environ.get("FAKE_CRYOLO_CRASH"):
    print("Traceback (most recent call last):\n  ...\ntensorflow.python.framework.errors_impl."
          "ResourceExhaustedError: OOM when allocating tensor", flush=True)
    sys.exit(1)

with open(args.conf) as handle:
    config = json.load(handle)
model, train = config["model"], config["train"]
assert model["architecture"] == "PhosaurusNet", model
assert model["input_size"] % 32 == 0 and len(model["anchors"]) == 2, model
images = sorted(os.listdir(train["train_image_folder"]))
boxes = sorted(os.listdir(train["train_annot_folder"]))
assert images and all(name.endswith(".tif") for name in images), images
assert [b[:-4] for b in boxes] == [i[:-4] for i in images], (boxes, images)
for name in boxes:
    with open(os.path.join(train["train_annot_folder"], name)) as handle:
        for line in handle:
            x, y, w, h = (float(v) for v in line.split())
            assert w == h == model["anchors"][0], line
print(f"training on {len(images)} images for {train['nb_epoch']} epochs")
with open(train["saved_weights_name"], "w") as handle:
    json.dump({"fake_weights": True, "box_size": model["anchors"][0]}, handle)
