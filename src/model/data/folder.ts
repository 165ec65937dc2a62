/** Image-folder data sets: `<root>/<class>/<file>`. */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { classIndexer } from './classes.js';
import { isImageFile, openScanned } from './dataset.js';
import type { Dataset } from './types.js';

export interface FolderOptions {
  root: string;
  /** Class list; folder names are matched to it by name. Default: the sub-folders, sorted. */
  classes?: readonly string[];
  /**
   * Group (video or identity) of an image, from its path relative to the root. Default: each
   * image is its own group, so the refinement sampler's per-group cap never drops anything.
   */
  groupOf?: (relativePath: string) => string;
}

async function subfolders(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries.filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name).sort();
}

/**
 * Opens an image folder. Folders that match no configured class are reported as problems and
 * skipped; files that are not images are ignored.
 *
 * @example
 * const ds = await openFolderDataset({ root: 'data/ferg', classes: BASIC7_CLASSES });
 * for (const p of ds.problems) console.warn(`${p.file}:${p.line} ${p.message}`);
 */
export async function openFolderDataset(options: FolderOptions): Promise<Dataset> {
  const { root, classes: given, groupOf } = options;
  const folders = await subfolders(root);
  const classes = given ?? folders;
  if (classes.length === 0) throw new Error(`${root}: no class folders and no class list`);
  const indexOf = classIndexer(classes);
  return openScanned(classes, async function* (report) {
    for (const folder of folders) {
      const dir = path.join(root, folder);
      const label = indexOf(folder);
      const files = (await readdir(dir, { withFileTypes: true }))
        .filter((e) => e.isFile() && isImageFile(e.name))
        .map((e) => e.name)
        .sort();
      if (label < 0) {
        report.unmapped += files.length;
        report.problems.push({ file: dir, line: 0, message: `folder "${folder}" is not in the class list; ${files.length} images skipped` });
        continue;
      }
      for (const name of files) {
        const rel = `${folder}/${name}`;
        yield { path: path.join(dir, name), label, group: groupOf ? groupOf(rel) : rel };
      }
    }
  });
}
