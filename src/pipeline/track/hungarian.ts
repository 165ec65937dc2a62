/**
 * Minimum-cost assignment (Hungarian algorithm, O(n^2 m) with potentials) for a rectangular cost
 * matrix. Infinite costs mark forbidden pairs; rows whose only options are forbidden stay unassigned.
 */

/** Returns, per row, the assigned column or -1. */
export function assign(cost: readonly (readonly number[])[]): number[] {
  const rows = cost.length;
  const cols = rows === 0 ? 0 : cost[0].length;
  if (rows === 0 || cols === 0) return new Array<number>(rows).fill(-1);
  // The algorithm needs rows <= cols; solve the transpose otherwise.
  if (rows > cols) {
    const t = Array.from({ length: cols }, (_, j) => cost.map((r) => r[j]));
    const byCol = assign(t);
    const out = new Array<number>(rows).fill(-1);
    byCol.forEach((r, j) => { if (r >= 0) out[r] = j; });
    return out;
  }
  // Forbidden pairs get a finite cost larger than any full assignment of allowed ones, so the
  // optimum uses as few of them as possible; they are dropped afterwards.
  let maxFinite = 0;
  for (const r of cost) for (const v of r) if (Number.isFinite(v)) maxFinite = Math.max(maxFinite, Math.abs(v));
  const big = (maxFinite + 1) * (rows + 1);
  const c = (i: number, j: number) => (Number.isFinite(cost[i][j]) ? cost[i][j] : big);
  // 1-based arrays of the classic formulation: p[j] = row matched to column j, u/v potentials.
  const u = new Array<number>(rows + 1).fill(0);
  const v = new Array<number>(cols + 1).fill(0);
  const p = new Array<number>(cols + 1).fill(0);
  const way = new Array<number>(cols + 1).fill(0);
  for (let i = 1; i <= rows; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Array<number>(cols + 1).fill(Infinity);
    const used = new Array<boolean>(cols + 1).fill(false);
    do {
      used[j0] = true;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= cols; j++) {
        if (used[j]) continue;
        const cur = c(i0 - 1, j - 1) - u[i0] - v[j];
        if (cur < minv[j]) { minv[j] = cur; way[j] = j0; }
        if (minv[j] < delta) { delta = minv[j]; j1 = j; }
      }
      for (let j = 0; j <= cols; j++) {
        if (used[j]) { u[p[j]] += delta; v[j] -= delta; } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  const out = new Array<number>(rows).fill(-1);
  for (let j = 1; j <= cols; j++) {
    if (p[j] !== 0 && Number.isFinite(cost[p[j] - 1][j - 1])) out[p[j] - 1] = j - 1;
  }
  return out;
}
