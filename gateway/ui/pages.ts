// The page registry: the navigation is drawn from this list, in this order, and each page adds
// its own routes. A new page is a file in gateway/ui/pages/ exporting a UiPage and one line
// here (docs/ui.md walks through it). Every .tsx file starts with
// `/** @jsxRuntime automatic @jsxImportSource hono/jsx */`: tsx finds tsconfig.json from the
// working directory, and `posthorn` may be started from anywhere.
import type { UiPage } from './env.ts';
import { connectionsPage } from './pages/connections.tsx';
import { deadLettersPage } from './pages/dead-letters.tsx';
import { endpointsPage } from './pages/endpoints.tsx';
import { keysPage } from './pages/keys.tsx';
import { monitorsPage } from './pages/monitors.tsx';
import { schedulesPage } from './pages/schedules.tsx';
import { statusPage } from './pages/status.tsx';
import { tasksPage } from './pages/tasks.tsx';

export const PAGES: UiPage[] = [
  tasksPage,
  deadLettersPage,
  schedulesPage,
  monitorsPage,
  endpointsPage,
  statusPage,
  keysPage,
  connectionsPage,
];
