/** Tasks beyond the core five live in their own modules and register themselves on import. */
export async function loadBuiltinTasks(): Promise<void> {
  await Promise.all([]);
}
