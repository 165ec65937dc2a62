/** What the rest of the product sees of a model: crops in, per-face distributions out. */

/** Five points (left eye, right eye, nose tip, left and right mouth corner), x and y in [0, 1]. */
export type CropTemplate = readonly (readonly [number, number])[];

export interface FacePrediction {
  /** Primary distribution l = softmax(z / T). */
  primary: number[];
  /** Corrected distribution p_final (what the product reports). */
  corrected: number[];
  /** c(l): normalised-entropy confidence of the primary distribution. */
  primaryConfidence: number;
  /** c(p_final): confidence of the corrected distribution. */
  confidence: number;
  /** Geometric-correction class distribution t_g (sum of anchor similarities per class). */
  anchorSimilarity: number[];
  /** argmax of the corrected distribution. */
  labelIndex: number;
  label: string;
}

export interface FaceModel {
  readonly classes: readonly string[];
  /** Side of the square RGB crop the model takes. */
  readonly inputSize: number;
  /**
   * Where the five alignment points (eyes, nose tip, mouth corners) go in the crop, in units of
   * the crop's side: the framing the model was trained on. Absent: the ArcFace template.
   */
  readonly cropTemplate?: CropTemplate;
  /** What runs the extractor: onnxruntime-node or tfjs (absent: not said, e.g. a stand-in model). */
  readonly engine?: 'onnx' | 'tfjs';
  /**
   * Predicts a batch of aligned crops, each inputSize*inputSize*3 RGB bytes, row-major HWC.
   * Results are in input order and do not depend on which other crops share the batch.
   */
  predict(crops: Uint8Array[]): Promise<FacePrediction[]>;
  dispose(): void;
}
