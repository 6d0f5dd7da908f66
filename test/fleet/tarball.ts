import { $ } from './sh.js';

/**
 * Reproducible gzipped tar of `entries` (relative to `cwd`): sorted, fixed mtime/owner, no gzip
 * timestamp — rebuilding from the same files yields the same bytes, so published checksums stay valid.
 */
export async function reproducibleTarGz(cwd: string, entries: string[], out: string): Promise<void> {
  await $({ cwd })`tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -cf - ${entries} | gzip -n > ${out}`;
}

export async function reproducibleTar(cwd: string, entries: string[], out: string): Promise<void> {
  await $({ cwd })`tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -cf ${out} ${entries}`;
}
