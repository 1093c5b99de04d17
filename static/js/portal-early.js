// Runs before the page is drawn (not deferred): marks that scripts run, so the phone
// layout folds the navigation behind its menu button without a flash of the open menu.
document.documentElement.classList.add("js");
