export * from './argv.js';
export * from './conf-file.js';
export * from './config.js';
export * from './errors.js';
export * from './help.js';
export * from './options.js';
export * from './suggest.js';
