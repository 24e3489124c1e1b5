// The web app's only script: mark the page as able to run GOV.UK Frontend, then start its components
// (skip link, service navigation menu, error summary focus, password reveal). Loaded as a module from
// /static, so the Content-Security-Policy needs no inline script.
import { initAll } from "./govuk/govuk-frontend.min.js";

document.body.classList.add("js-enabled", "govuk-frontend-supported");
initAll();
