"""
Reference trainer for the image stream of arbex's default real-face model (the `cnn` extractor).

Why PyTorch: on 2 CPU cores a training step of this network takes about 1 s in PyTorch and
minutes with tfjs; `arbex train` (TypeScript) remains the product's training path and trains the
ARBEx head on top of the frozen network exported from here. The layer layout below is the one of
`src/model/extractor/cnn.ts`, parameter for parameter, and `export` writes the weights under the
TypeScript names; test/extractor/cnn-parity.test.ts checks the two implementations agree.

Data: FER2013 as image folders (`<root>/{train,validation,test}/<class>/*.jpg`). Trains on train/,
selects the checkpoint on validation/ (PublicTest); test/ (PrivateTest) is only read by `evaluate`
after training is finished.

Usage (see docs/TRAINING.md):
  python3 reference/torch/fer_cnn.py train  --data data/fer2013 --out runs/fer-cnn [--epochs 20] [--seed 1]
  python3 reference/torch/fer_cnn.py train  --out runs/fer-cnn --resume      # continue after a stop
  python3 reference/torch/fer_cnn.py evaluate --data data/fer2013 --out runs/fer-cnn --split test
  python3 reference/torch/fer_cnn.py export --out runs/fer-cnn --to runs/fer-cnn/export
  node bin/arbex.js train --config configs/fer.json --init runs/fer-cnn/export ...   # the ARBEx head
"""
import argparse
import hashlib
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

# The project's 7-class order (ABAW order without "Other") and FER2013's folder names.
CLASSES = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
FOLDERS = {"neutral": 0, "angry": 1, "disgust": 2, "fear": 3, "happy": 4, "sad": 5, "surprise": 6}

# Architecture (must match configs/fer.json's extractor): grey input normalised with fixed
# constants, a stem conv, four stages of ResNet basic blocks, global average pooling.
ARCH = {"inputSize": 48, "stemWidth": 24, "widths": [24, 48, 96, 192], "depths": [1, 2, 2, 2], "greyMean": 0.5, "greyStd": 0.25}
# ITU-R BT.601 luma, as FER2013's greyscale and the TypeScript model's colour-to-grey step.
LUMA = (0.299, 0.587, 0.114)


class Basic(nn.Module):
    """ResNet basic block: conv3x3(stride) BN ReLU conv3x3 BN, + shortcut (conv1x1 BN if shape changes), ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if cin != cout or stride != 1:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class FerCnn(nn.Module):
    def __init__(self, arch=ARCH, classes=len(CLASSES), dropout=0.2):
        super().__init__()
        self.arch = arch
        self.stem = nn.Conv2d(1, arch["stemWidth"], 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(arch["stemWidth"])
        blocks, cin = [], arch["stemWidth"]
        for s, (w, d) in enumerate(zip(arch["widths"], arch["depths"])):
            for i in range(d):
                blocks.append(Basic(cin, w, 2 if (i == 0 and s > 0) else 1))
                cin = w
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, classes)

    def embed(self, grey):
        """grey: [B, 1, S, S] in [0, 1] -> e [B, D] (global average of the last stage)."""
        x = (grey - self.arch["greyMean"]) / self.arch["greyStd"]
        h = F.relu(self.stem_bn(self.stem(x)))
        return self.blocks(h).mean(dim=(2, 3))

    def forward(self, grey):
        return self.fc(self.drop(self.embed(grey)))


def load_split(root, split):
    """All images of one split as uint8 [N, 48, 48] and labels [N] (project class order)."""
    images, labels = [], []
    base = os.path.join(root, split)
    for folder in sorted(os.listdir(base)):
        if folder.lower() not in FOLDERS:
            raise SystemExit(f"{base}/{folder}: not a FER2013 class folder ({', '.join(FOLDERS)})")
        for name in sorted(os.listdir(os.path.join(base, folder))):
            img = Image.open(os.path.join(base, folder, name)).convert("L")
            if img.size != (48, 48):
                img = img.resize((48, 48), Image.BILINEAR)
            images.append(np.asarray(img, dtype=np.uint8))
            labels.append(FOLDERS[folder.lower()])
    return np.stack(images), np.array(labels, dtype=np.int64)


def cached_split(root, split, cache_dir):
    os.makedirs(cache_dir, exist_ok=True)
    file = os.path.join(cache_dir, f"{split}.npz")
    if os.path.exists(file):
        z = np.load(file)
        return z["x"], z["y"]
    x, y = load_split(root, split)
    np.savez(file, x=x, y=y)
    return x, y


def augment(x, side, gen):
    """x: float [B, 1, 48, 48] in [0, 1] -> [B, 1, side, side]: flip, rotation, scale, shift,
    brightness/contrast, random erasing. All randomness from `gen` (reproducible)."""
    b = x.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=gen)
    angle = (u(b) * 2 - 1) * math.radians(15)
    scale = 1 + (u(b) * 2 - 1) * 0.15
    tx, ty = (u(b) * 2 - 1) * 0.1, (u(b) * 2 - 1) * 0.1
    flip = torch.where(u(b) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, [b, 1, side, side], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = 1 + (u(b, 1, 1, 1) * 2 - 1) * 0.3
    bright = (u(b, 1, 1, 1) * 2 - 1) * 0.15
    mean = out.mean(dim=(2, 3), keepdim=True)
    out = ((out - mean) * contrast + mean + bright).clamp(0, 1)
    # Random erasing (p = 0.5, 2-20 % of the area, filled with noise).
    erase = u(b) < 0.5
    area = (0.02 + u(b) * 0.18) * side * side
    ratio = torch.exp((u(b) * 2 - 1) * math.log(3))
    eh = (area * ratio).sqrt().clamp(1, side - 1).long()
    ew = (area / ratio).sqrt().clamp(1, side - 1).long()
    for i in torch.nonzero(erase).flatten().tolist():
        top = int(u(1).item() * (side - eh[i]))
        left = int(u(1).item() * (side - ew[i]))
        out[i, :, top : top + eh[i], left : left + ew[i]] = u(1, int(eh[i]), int(ew[i]))
    return out


def side_for_epoch(epoch, epochs, low_epochs):
    """Progressive resizing: the first `low_epochs` epochs train at 40x40 (44 % fewer pixels),
    the rest at the full 48x48 so the BatchNorm statistics and filters settle at test size."""
    return 40 if epoch < low_epochs else 48


@torch.no_grad()
def predict(model, x_uint8, batch=512, flip_tta=True):
    """Logits [N, 7] for uint8 [N, 48, 48]; with flip_tta the mean of the image and its mirror."""
    model.eval()
    out = []
    for i in range(0, len(x_uint8), batch):
        xb = torch.from_numpy(x_uint8[i : i + batch]).float().div(255).unsqueeze(1)
        logits = model(xb)
        if flip_tta:
            logits = (logits + model(torch.flip(xb, dims=[3]))) / 2
        out.append(logits)
    return torch.cat(out)


def accuracy(logits, y):
    return float((logits.argmax(1).numpy() == y).mean())


def macro_f1(logits, y, classes=7):
    p = logits.argmax(1).numpy()
    f1s = []
    for c in range(classes):
        tp = int(((p == c) & (y == c)).sum())
        fp = int(((p == c) & (y != c)).sum())
        fn = int(((p != c) & (y == c)).sum())
        if tp + fp + fn == 0:
            continue
        f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s))


def save_checkpoint(path, state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(args):
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    reschedule = None
    if args.resume:
        with open(os.path.join(args.out, "args.json")) as f:
            saved = json.load(f)
        # --epochs / --low-epochs given with --resume shorten or lengthen the run: the one-cycle
        # schedule is rebuilt for the new length and continues from the step reached.
        given = {k: getattr(args, k) for k in ("epochs", "low_epochs") if getattr(args, k) is not None}
        for k in ("data", "epochs", "seed", "batch", "lr", "wd", "low_epochs", "dropout"):
            setattr(args, k, saved[k])
        if given and any(given[k] != saved[k] for k in given):
            reschedule = given
            for k, v in given.items():
                setattr(args, k, v)
            saved.setdefault("reschedules", []).append(given)
            with open(os.path.join(args.out, "args.json"), "w") as f:
                json.dump({**saved, **given}, f, indent=1)
    else:
        if os.path.exists(ckpt_path):
            raise SystemExit(f"{args.out} already holds a run; pass --resume to continue it or choose another --out")
        with open(os.path.join(args.out, "args.json"), "w") as f:
            json.dump({k: v for k, v in vars(args).items() if k not in ("cmd", "resume", "threads")}, f, indent=1)

    cache = os.path.join(args.data, ".npz-cache")
    xtr, ytr = cached_split(args.data, "train", cache)
    xva, yva = cached_split(args.data, "validation", cache)
    print(json.dumps({"event": "data", "train": len(ytr), "validation": len(yva)}), flush=True)

    torch.manual_seed(args.seed)
    model = FerCnn(dropout=args.dropout).to(memory_format=torch.channels_last)
    steps_per_epoch = len(ytr) // args.batch
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=args.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2)
    gen = torch.Generator().manual_seed(args.seed)
    start, best = 0, {"acc": -1.0}
    if args.resume:
        state = torch.load(ckpt_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if reschedule:
            done = state["epoch"] * steps_per_epoch
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2, last_epoch=done - 1)
            print(json.dumps({"event": "reschedule", "epochs": args.epochs, "low_epochs": args.low_epochs, "lr": sched.get_last_lr()[0]}), flush=True)
        else:
            sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        start, best = state["epoch"], state["best"]
        print(json.dumps({"event": "resume", "epoch": start, "best": best}), flush=True)

    xtr_t = torch.from_numpy(xtr)
    ytr_t = torch.from_numpy(ytr)
    for epoch in range(start, args.epochs):
        model.train()
        side = side_for_epoch(epoch, args.epochs, args.low_epochs)
        order = torch.randperm(len(ytr), generator=gen)
        t0, loss_sum, correct, seen = time.time(), 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch : (step + 1) * args.batch]
            xb = augment(xtr_t[idx].float().div(255).unsqueeze(1), side, gen).contiguous(memory_format=torch.channels_last)
            yb = ytr_t[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            seen += len(idx)
            if args.log_every and step % args.log_every == 0:
                print(json.dumps({"event": "step", "epoch": epoch + 1, "step": step, "loss": round(float(loss), 4), "s": round(time.time() - t0, 1)}), flush=True)
        val = predict(model, xva)
        rec = {
            "event": "epoch", "epoch": epoch + 1, "side": side, "loss": round(loss_sum / seen, 4), "train_acc": round(correct / seen, 4),
            "val_acc": round(accuracy(val, yva), 4), "val_macro_f1": round(macro_f1(val, yva), 4),
            "lr": round(sched.get_last_lr()[0], 6), "seconds": round(time.time() - t0, 1),
        }
        if rec["val_acc"] > best["acc"]:
            best = {"acc": rec["val_acc"], "epoch": epoch + 1}
            save_checkpoint(os.path.join(args.out, "best.pt"), {"model": model.state_dict(), "epoch": epoch + 1, "val_acc": rec["val_acc"]})
        save_checkpoint(ckpt_path, {
            "model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "gen": gen.get_state(),
            "torch_rng": torch.get_rng_state(), "epoch": epoch + 1, "best": best,
        })
        with open(os.path.join(args.out, "metrics.jsonl"), "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)


def load_best(out):
    model = FerCnn()
    state = torch.load(os.path.join(out, "best.pt"))
    model.load_state_dict(state["model"])
    model.eval()
    return model.to(memory_format=torch.channels_last), state


def evaluate(args):
    torch.set_num_threads(args.threads)
    model, state = load_best(args.out)
    x, y = cached_split(args.data, args.split, os.path.join(args.data, ".npz-cache"))
    rec = {"split": args.split, "images": int(len(y)), "best_epoch": state["epoch"]}
    for tta in (False, True):
        logits = predict(model, x, flip_tta=tta)
        rec["flip_tta" if tta else "plain"] = {"accuracy": round(accuracy(logits, y), 4), "macro_f1": round(macro_f1(logits, y), 4)}
    print(json.dumps(rec))


def export(args):
    """Writes the best checkpoint in arbex's weights format, in TensorFlow layout (conv weights
    [kh, kw, in, out], BatchNorm as gamma/beta/movingMean/movingVar) under the TypeScript
    parameter names, plus reference outputs for the parity test."""
    model, state = load_best(args.out)
    sd = model.state_dict()
    tensors = {}

    def conv(ts_name, pt_name):
        tensors[f"{ts_name}.weight"] = sd[f"{pt_name}.weight"].permute(2, 3, 1, 0).contiguous()

    def bn(ts_name, pt_name):
        tensors[f"{ts_name}.gamma"] = sd[f"{pt_name}.weight"]
        tensors[f"{ts_name}.beta"] = sd[f"{pt_name}.bias"]
        tensors[f"{ts_name}.movingMean"] = sd[f"{pt_name}.running_mean"]
        tensors[f"{ts_name}.movingVar"] = sd[f"{pt_name}.running_var"]

    p = "extractor"
    conv(f"{p}.stem.conv", "stem")
    bn(f"{p}.stem.bn", "stem_bn")
    k = 0
    for s, d in enumerate(ARCH["depths"]):
        for i in range(d):
            t, q = f"{p}.stage{s + 1}.{i}", f"blocks.{k}"
            conv(f"{t}.conv1", f"{q}.conv1")
            bn(f"{t}.bn1", f"{q}.bn1")
            conv(f"{t}.conv2", f"{q}.conv2")
            bn(f"{t}.bn2", f"{q}.bn2")
            if f"{q}.shortcut.0.weight" in sd:
                conv(f"{t}.shortcut.conv", f"{q}.shortcut.0")
                bn(f"{t}.shortcut.bn", f"{q}.shortcut.1")
            k += 1
    # The CE classifier of the reference run (useful as a plain-CE head to compare with).
    tensors["reference.fc.weight"] = sd["fc.weight"].t().contiguous()
    tensors["reference.fc.bias"] = sd["fc.bias"]

    os.makedirs(args.to, exist_ok=True)
    # The arbex weights format (src/model/weights): a manifest with byte length and SHA-256, one
    # float32 shard. `arbex train --init DIR` fills a model's extractor from it.
    names = sorted(tensors)
    blobs = [tensors[n].detach().float().numpy().astype("<f4") for n in names]
    data = b"".join(a.tobytes() for a in blobs)
    manifest = {
        "format": "arbex-weights", "version": 1,
        "weightsManifest": [{"paths": ["weights.bin"], "weights": [{"name": n, "shape": list(a.shape), "dtype": "float32"} for n, a in zip(names, blobs)]}],
        "byteLength": len(data), "sha256": hashlib.sha256(data).hexdigest(),
    }
    with open(os.path.join(args.to, "weights.bin"), "wb") as f:
        f.write(data)
    with open(os.path.join(args.to, "model.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    with open(os.path.join(args.to, "reference.json"), "w") as f:
        json.dump({"arch": ARCH, "classes": CLASSES, "best_epoch": state["epoch"], "val_acc": state["val_acc"]}, f, indent=1)

    # Parity reference: a few grey images (seeded noise, smooth gradients, stored as bytes so any
    # implementation reads exactly the same pixels) with the embeddings and logits computed here.
    g = torch.Generator().manual_seed(123)
    noise = torch.randint(0, 256, (3, 48, 48), generator=g)
    yy, xx = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    smooth = ((xx * 5 + yy * 3) % 256).unsqueeze(0)
    pixels = torch.cat([noise, smooth]).to(torch.uint8)
    x = pixels.float().div(255).unsqueeze(1)
    with torch.no_grad():
        e = model.embed(x)
        logits = model.fc(e)
    ref = {"pixels": pixels.reshape(len(pixels), -1).tolist(), "embedding": e.tolist(), "logits": logits.tolist()}
    with open(os.path.join(args.to, "parity.json"), "w") as f:
        json.dump(ref, f)
    print(json.dumps({"exported": args.to, "tensors": len(names), "bytes": len(data)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["train", "evaluate", "export"])
    ap.add_argument("--data", default="data/fer2013")
    ap.add_argument("--out", default="runs/fer-cnn")
    ap.add_argument("--to", default=None)
    ap.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    ap.add_argument("--epochs", type=int, default=None, help="default 20")
    ap.add_argument("--low-epochs", dest="low_epochs", type=int, default=None, help="epochs at 40x40 first (default 15)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", dest="log_every", type=int, default=0)
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    if args.cmd == "train":
        if not args.resume:
            args.epochs = args.epochs or 20
            args.low_epochs = 15 if args.low_epochs is None else args.low_epochs
        train(args)
    elif args.cmd == "evaluate":
        evaluate(args)
    else:
        args.to = args.to or os.path.join(args.out, "export")
        export(args)


if __name__ == "__main__":
    random.seed(0)
    np.random.seed(0)
    sys.exit(main())
