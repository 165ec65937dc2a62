/**
 * The media folders: the one place that decides whether a local file may be read. Sources
 * (source.ts) and the server's jobs (server/media.ts) both ask here.
 *
 * @example
 *   const dirs = realMediaDirs(settings.mediaDirs);
 *   for (const candidate of mediaCandidates('clip.mp4', settings.mediaDirs)) ...
 *   if (!isInsideMediaDirs(fs.realpathSync(candidate), dirs)) refuse();
 */
import fs from 'node:fs';
import path from 'node:path';

/** The media folders that exist, symbolic links resolved. */
export function realMediaDirs(mediaDirs: readonly string[]): string[] {
  return mediaDirs.flatMap((dir) => {
    try {
      return [fs.realpathSync(path.resolve(dir))];
    } catch {
      return [];
    }
  });
}

/** Where a requested file may be: an absolute path as is; a relative one in each media folder, in order. */
export function mediaCandidates(requested: string, mediaDirs: readonly string[]): string[] {
  return path.isAbsolute(requested) ? [requested] : mediaDirs.map((d) => path.resolve(d, requested));
}

/** Whether a real path (symbolic links resolved) lies strictly inside one of the real media folders. */
export function isInsideMediaDirs(realPath: string, realDirs: readonly string[]): boolean {
  return realDirs.some((dir) => {
    const rel = path.relative(dir, realPath);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
}
