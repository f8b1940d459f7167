/** Entry point: restore the session (refresh cookie), then render. */

import { render } from "preact";
import { App } from "./app/App";
import { loadBranding } from "./branding/state";
import { boot } from "./session/session";
import "./styles.css";

const root = document.getElementById("app");
if (root) render(<App />, root);
void loadBranding();
void boot();
