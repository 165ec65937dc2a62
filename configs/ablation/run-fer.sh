#!/usr/bin/env bash
# ARBEx vs plain CE on the frozen real-face CNN's features: 3 seeds x 0/20/40 % symmetric noise,
# with the shipped head recipe (configs/fer.json) unless EPOCHS is set.
set -euo pipefail
cd "$(dirname "$0")/../.."
INIT=${INIT:-weights/fer}
DATA=${DATA:-data/fer2013}
OUT=${OUT:-runs/ablation-fer}
EPOCHS=${EPOCHS:-}    # empty: the epochs of configs/fer.json
mkdir -p "$OUT"
for noise in 0 20 40; do
  for seed in ${SEEDS:-1 2 3}; do
    for objective in arbex ce; do
      run="$OUT/$objective-n$noise-s$seed"
      [ -f "$run/test.json" ] && continue
      cfg="$OUT/$objective.json"
      node -e '
        const c = JSON.parse(require("fs").readFileSync("configs/fer.json", "utf8"));
        const [objective, seed, epochs] = process.argv.slice(1);
        c.objective = objective; c.seed = Number(seed); if (epochs) c.epochs = Number(epochs);
        if (objective === "ce") c.labelSmoothing = 0;   // a plain baseline is plain
        delete c.$comment;
        process.stdout.write(JSON.stringify(c, null, 1));
      ' "$objective" "$seed" "$EPOCHS" > "$run.config.json"
      rm -rf "$run"
      node bin/arbex.js train --config "$run.config.json" --init "$INIT" \
        --data "folder:$DATA/train,noise=$noise,noiseSeed=$seed" \
        --val "folder:$DATA/validation" --test "folder:$DATA/test" --out "$run" > "$run.log" 2>&1
      node -e '
        const t = JSON.parse(require("fs").readFileSync(process.argv[1] + "/test.json", "utf8"));
        console.log(JSON.stringify({ run: process.argv[1], accuracy: t.accuracy, macroF1: t.macroF1, primaryAccuracy: t.primaryAccuracy, primaryMacroF1: t.primaryMacroF1 }));
      ' "$run" | tee -a "$OUT/results.jsonl"
    done
  done
done
