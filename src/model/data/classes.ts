/**
 * Class lists of the public data sets, and name matching between them. A data set's own label
 * names are mapped to the configured class list by name, so one model's class order can be
 * trained from several sources.
 */

/** Aff-Wild2 / ABAW expression classes, in the order of the annotation files' header. */
export const ABAW_CLASSES = ['Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Other'] as const;

/** The seven basic expressions in ABAW order (the default for 7-class data such as RAF-DB). */
export const BASIC7_CLASSES = ABAW_CLASSES.slice(0, 7);

/** RAF-DB's labels 1..7, in file order. */
export const RAF_LABELS = ['Surprise', 'Fear', 'Disgust', 'Happiness', 'Sadness', 'Anger', 'Neutral'] as const;

/** FER2013's `emotion` values 0..6, in the Kaggle CSV's order. */
export const FER2013_LABELS = ['Angry', 'Disgust', 'Fear', 'Happy', 'Sad', 'Surprise', 'Neutral'] as const;

// Spellings used by common data sets (FER2013 "Angry", AffectNet "Happy", FERG "joy", ...).
const ALIASES: Record<string, string> = {
  angry: 'anger',
  disgusted: 'disgust',
  fearful: 'fear',
  afraid: 'fear',
  happy: 'happiness',
  joy: 'happiness',
  sad: 'sadness',
  surprised: 'surprise',
};

/** Lower-cased name with common variants folded together ("Happy" and "happiness" match). */
export function canonicalClass(name: string): string {
  const n = name.trim().toLowerCase();
  return ALIASES[n] ?? n;
}

/** Maps a label name to its index in `classes` (-1 when absent). */
export function classIndexer(classes: readonly string[]): (name: string) => number {
  const index = new Map(classes.map((c, i) => [canonicalClass(c), i]));
  if (index.size !== classes.length) throw new Error(`class list has duplicate names: ${classes.join(', ')}`);
  return (name) => index.get(canonicalClass(name)) ?? -1;
}
