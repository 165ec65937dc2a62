/** The label space of the synthetic data: Aff-Wild2's eight classes, in Aff-Wild2's order. */

export const CLASSES = ['Neutral', 'Anger', 'Disgust', 'Fear', 'Happiness', 'Sadness', 'Surprise', 'Other'] as const;

export type ClassName = (typeof CLASSES)[number];

export const NUM_CLASSES = CLASSES.length;

export const classIndex = (name: ClassName): number => CLASSES.indexOf(name);
