/** The parts of /readyz and /livez bodies that tests read. */
export interface Health {
  status: string;
  checks: Record<string, { status: string; required: boolean; error?: string }>;
  pools: { primary: unknown };
  lastJobCompletedMsAgo: number;
}
