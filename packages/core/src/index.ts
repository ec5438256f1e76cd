export * from './errors.js';
export * from './options.js';
