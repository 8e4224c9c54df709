/** Polls `condition` until it holds or `timeoutMs` passes; says which. Tests bound every wait. */
export async function until(
  condition: () => Promise<boolean> | boolean,
  timeoutMs = 5_000,
  intervalMs = 25,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return false;
}
