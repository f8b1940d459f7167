/** Entry point: restore the session (refresh cookie, else the offline snapshot), then render. */

import { render } from "preact";
import { App } from "./app/App";
import { loadBranding } from "./branding/state";
import { registerServiceWorker } from "./offline/register";
import { start } from "./offline/state";
import "./styles.css";
import "./app/screens.css";

const root = document.getElementById("app");
if (root) render(<App />, root);
void loadBranding();
void start();
registerServiceWorker();
