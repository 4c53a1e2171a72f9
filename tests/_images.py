"""Image folders for the ingest tests: labelled PNGs, one corrupt file and the labels CSV."""
import numpy as np
from PIL import Image


def write_labelled_pngs(folder, sides, labels, seed):
    """Writes `img_<i>.png` (RGB, `sides[i]` pixels square, random), `broken.png` (not a PNG) and `labels.csv` (a
    header line, then `img_<i>.png,<labels[i]>` and `broken.png,<labels[0]>`); returns `{file name: pixels}`."""
    rng = np.random.default_rng(seed)
    pixels = {}
    lines = ["filename,label"]
    for i, (side, label) in enumerate(zip(sides, labels)):
        name = f"img_{i}.png"
        pixels[name] = rng.integers(0, 255, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels[name]).save(folder / name)
        lines.append(f"{name},{label}")
    (folder / "broken.png").write_bytes(b"not a png at all")
    lines.append(f"broken.png,{labels[0]}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return pixels
