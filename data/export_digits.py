#!/usr/bin/env python3
"""Exports scikit-learn's copy of the UCI optical digits test set to
data/digits.csv: 64 pixel columns p0..p63 (integers 0..16, an 8x8 image
row by row) and the label 0..9.

The data is read from the scikit-learn wheel itself, without installing
it or anything it depends on:

    pip download --no-deps --only-binary :all: -d /tmp/wheel scikit-learn==1.9.1
    python3 data/export_digits.py /tmp/wheel/scikit_learn-1.9.1-*.whl

The output is the same whatever the platform of the wheel.
"""
import csv
import gzip
import io
import sys
import zipfile

MEMBER = "sklearn/datasets/data/digits.csv.gz"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as z:
        text = gzip.decompress(z.read(MEMBER)).decode()
    rows = [line.split(",") for line in text.strip().splitlines()]
    out = "data/digits.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow([f"p{k}" for k in range(64)] + ["label"])
        for row in rows:
            values = [int(float(v)) for v in row]
            assert len(values) == 65 and 0 <= values[64] <= 9
            w.writerow(values)
    print(f"{out}: {len(rows)} rows")


if __name__ == "__main__":
    main(sys.argv[1])
