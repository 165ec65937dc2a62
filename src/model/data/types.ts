/**
 * What every data-set reader returns. Records are small metadata (a path, a few integers), so a
 * whole epoch's list fits in memory; pixels are decoded only when a record is loaded.
 */

export interface DataRecord {
  /** Absolute path of the image file; `<file>:<line>` for an image stored in a row of a text file. */
  path: string;
  /** For an image stored in a row of a text file (FER2013's CSV): the row's bytes in that file. */
  span?: { offset: number; length: number };
  /** Index into the data set's `classes`. */
  label: number;
  /** Video or identity the image belongs to; the refinement sampler caps images per group. */
  group: string;
  /** 1-based frame number within the group's video, when the data set has one. */
  frame?: number;
}

/** A malformed input row: reported with its file and 1-based line (0 when not about one line). */
export interface Problem {
  file: string;
  line: number;
  message: string;
}

/** Totals from the scan made when a data set is opened. */
export interface DatasetCounts {
  /** Usable records. */
  records: number;
  /** Usable records per class index. */
  perClass: number[];
  /** Rows whose image file does not exist (skipped). */
  missingImages: number;
  /** Rows marked as not annotated, e.g. ABAW's -1 (skipped). */
  unlabelled: number;
  /** Rows whose class exists in the data set but not in the configured class list (skipped). */
  unmapped: number;
}

export interface Dataset {
  readonly classes: readonly string[];
  /** Malformed rows found when the data set was opened; callers log them once. */
  readonly problems: readonly Problem[];
  readonly counts: DatasetCounts;
  /** Streams the usable records from disk, in a fixed order, without holding the whole list. */
  records(): AsyncIterable<DataRecord>;
  /** Decodes one record's image to size*size*3 RGB bytes, row-major HWC. */
  load(record: DataRecord, size: number): Promise<Uint8Array>;
}
