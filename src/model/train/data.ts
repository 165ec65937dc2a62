/**
 * `--data kind:path[,key=value...]` → an opened Dataset, for any reader in src/model/data:
 *   folder:data/synth/train[,group=prefix|file|folder]
 *   csv:data/train.csv
 *   rafdb:data/RAF-DB/basic[,partition=train|test|all]
 *   abaw:data/abaw[,annotations=EXPR/Train_Set][,images=cropped_aligned]
 *   fer2013csv:data/fer2013.csv[,usage=Training|PublicTest|PrivateTest, several joined by +]
 * Every kind also takes `noise=P[,noiseSeed=S]`: P % of the labels moved to another class
 * (symmetric label noise, for robustness experiments; validation and test sets stay clean).
 */
import path from 'node:path';
import { openAbaw, openCsvDataset, openFer2013Csv, openFolderDataset, openRafDb, type Dataset, type Fer2013Usage } from '../data/index.js';
import { withLabelNoise } from '../data/noise.js';

export const DATA_KINDS = ['folder', 'csv', 'rafdb', 'abaw', 'fer2013csv'] as const;
export type DataKind = (typeof DATA_KINDS)[number];

export interface DataSpec {
  kind: DataKind;
  path: string;
  options: Record<string, string>;
}

const OPTIONS: Record<DataKind, string[]> = {
  folder: ['group'],
  csv: [],
  rafdb: ['partition'],
  abaw: ['annotations', 'images'],
  fer2013csv: ['usage'],
};

/** Options every kind takes. */
const COMMON_OPTIONS = ['noise', 'noiseSeed'];

export function parseDataSpec(text: string): DataSpec {
  const colon = text.indexOf(':');
  const kind = text.slice(0, colon) as DataKind;
  if (colon < 1 || !DATA_KINDS.includes(kind)) {
    throw new Error(`data "${text}": expected kind:path with kind one of ${DATA_KINDS.join(', ')} (e.g. folder:data/synth/train)`);
  }
  const [p, ...pairs] = text.slice(colon + 1).split(',');
  if (!p) throw new Error(`data "${text}": the path is empty`);
  const options: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const allowed = [...OPTIONS[kind], ...COMMON_OPTIONS];
    if (eq < 1 || !allowed.includes(key)) {
      throw new Error(`data "${text}": "${pair}" is not an option of ${kind} (${allowed.map((o) => `${o}=...`).join(', ')})`);
    }
    options[key] = pair.slice(eq + 1);
  }
  return { kind, path: p, options };
}

/**
 * Group of an image in a folder data set, from `<class>/<file>`. 'prefix' is the file name up to
 * its last '_' (the synthetic set names files `<identity>_<n>.png`, so groups are identities);
 * 'folder' the sub-folder below the class, 'file' the image itself.
 */
function folderGrouping(mode: string | undefined): ((rel: string) => string) | undefined {
  if (mode === undefined || mode === 'file') return undefined;
  if (mode === 'prefix') {
    return (rel) => {
      const base = path.posix.basename(rel);
      const cut = base.lastIndexOf('_');
      return cut > 0 ? base.slice(0, cut) : base;
    };
  }
  if (mode === 'folder') return (rel) => rel.split('/').slice(1, -1).join('/') || rel;
  throw new Error(`folder option group must be prefix, folder or file (got "${mode}")`);
}

/**
 * Opens the data set a spec names, mapped onto `classes`.
 *
 * @example
 * const ds = await openDataSpec(parseDataSpec('folder:data/synth/train,group=prefix'), config.model.classes);
 */
export async function openDataSpec(spec: DataSpec, classes: readonly string[]): Promise<Dataset> {
  const dataset = await openReader(spec, classes);
  const { noise, noiseSeed } = spec.options;
  if (noise === undefined) return dataset;
  const percent = Number(noise);
  const seed = Number(noiseSeed ?? 1);
  if (!(percent >= 0 && percent <= 100)) throw new Error(`data option noise must be a percentage within 0..100 (got "${noise}")`);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`data option noiseSeed must be an integer >= 0 (got "${noiseSeed}")`);
  return withLabelNoise(dataset, { percent, seed });
}

async function openReader(spec: DataSpec, classes: readonly string[]): Promise<Dataset> {
  const o = spec.options;
  switch (spec.kind) {
    case 'folder':
      return openFolderDataset({ root: spec.path, classes, groupOf: folderGrouping(o.group) });
    case 'csv':
      return openCsvDataset({ file: spec.path, classes });
    case 'rafdb': {
      const partition = o.partition ?? 'all';
      if (partition !== 'train' && partition !== 'test' && partition !== 'all') throw new Error(`rafdb option partition must be train, test or all (got "${partition}")`);
      return openRafDb({ root: spec.path, classes, partition });
    }
    case 'abaw':
      return openAbaw({
        root: spec.path,
        classes,
        ...(o.annotations ? { annotationsDir: o.annotations } : {}),
        ...(o.images ? { imagesDir: o.images } : {}),
      });
    case 'fer2013csv':
      return openFer2013Csv({ file: spec.path, classes, ...(o.usage !== undefined ? { usage: o.usage.split('+') as Fer2013Usage[] } : {}) });
  }
}
