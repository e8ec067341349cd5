// Small progressive enhancements; every page works without them.
document.addEventListener("DOMContentLoaded", () => {
  for (const all of document.querySelectorAll("[data-select-all]")) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll(all.dataset.selectAll)) box.checked = all.checked;
    });
  }
  // A class list follows the chosen school (issue 14, item 5); the server refuses the rest.
  for (const classes of document.querySelectorAll("[data-school-select]")) {
    const school = document.querySelector(classes.dataset.schoolSelect);
    if (!school) continue;
    const follow = () => {
      for (const option of classes.options) {
        const other = option.dataset.school && school.value && option.dataset.school !== school.value;
        option.hidden = option.disabled = Boolean(other);
        if (other && option.selected) classes.value = "";
      }
    };
    school.addEventListener("change", follow);
    follow();
  }
  // "Apply" on a trial run with errors waits for "skip the rows with errors" (issue 14, item 11).
  for (const button of document.querySelectorAll("[data-enabled-by]")) {
    const box = document.querySelector(button.dataset.enabledBy);
    if (!box) continue;
    const follow = () => { button.disabled = !box.checked; };
    box.addEventListener("change", follow);
    follow();
  }
  for (const button of document.querySelectorAll("[data-print]")) {
    button.addEventListener("click", () => window.print());
  }
});
