/**
 * execa, loaded on first use. It is ~100 small ES modules: loading it costs more than the
 * rest of `buttersink --version` together, and `buttersink server` answers its client's
 * hello before it runs any child, so modules that run children ask for it here when they do.
 * A failed load rejects every later call too (the caller reports it).
 */
let loading: Promise<typeof import('execa')> | undefined;

export function loadExeca(): Promise<typeof import('execa')> {
  loading ??= import('execa');
  return loading;
}
