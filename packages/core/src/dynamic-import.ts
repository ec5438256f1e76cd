/**
 * dynamic-import — import() of a specifier known only at run time. In the bundled runtime, which
 * vm.Script compiles without a module loader, scripts/bundle.mjs puts the runtime loader's host in
 * this module's place (see runtime-loader.ts).
 */
export function importModule(specifier: string): Promise<unknown> {
  return import(specifier);
}
