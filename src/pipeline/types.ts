/** Shapes that flow from ingest through the pipeline to the server, CLI and evaluation. */

/** One decoded video frame: packed RGB, row-major, width*height*3 bytes. */
export interface Frame {
  /** Source frame index: for files, frame N of the file (0-based). */
  index: number;
  /** Presentation time in milliseconds from the start of the source. */
  ptsMs: number;
  width: number;
  height: number;
  data: Uint8Array;
}

export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Five alignment points in image pixels: left eye, right eye, nose tip, left mouth, right mouth. */
export type Landmarks5 = [number, number][];

export interface FaceOutput {
  track: number;
  box: Box;
  landmarks5: Landmarks5;
  primary: number[];
  corrected: number[];
  confidence: number;
  label: string;
  smoothed: number[];
  smoothedLabel: string;
}

/** Per frame: every face found (faces: 0 and an empty list when there is none). */
export interface FrameOutput {
  stream: string;
  frame: number;
  ptsMs: number;
  faces: number;
  results: FaceOutput[];
}
