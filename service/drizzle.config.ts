import { defineConfig } from 'drizzle-kit';

// `npm run db:generate -w service` writes a new SQL migration from src/db/schema.ts; review it and
// keep it valid on MySQL 8.4 and MariaDB 10.11 (the migrations test runs it on MariaDB).
export default defineConfig({
  dialect: 'mysql',
  schema: './src/db/schema.ts',
  out: './drizzle',
  breakpoints: true,
});
