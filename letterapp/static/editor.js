// The editor's live preview: 400 ms after the last keystroke, the form is posted
// (with its CSRF token) to the preview endpoint, and the letter, its note problems
// and the characters no font can draw replace the preview beside the form.
// Without JavaScript the Preview button does the same with a page load.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("letter-editor");
  if (!form) return;
  const letter = document.getElementById("preview-letter");
  const checks = document.getElementById("preview-checks");
  const status = document.getElementById("preview-status");
  const token = form.querySelector("input[name=csrf_token]").value;
  let timer = null;
  let sent = 0; // answers to older requests are dropped

  const line = (text, className) => {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  };

  const show = (answer) => {
    letter.innerHTML = answer.html; // rendered and sanitised by the server
    checks.replaceChildren(
      ...answer.problems.map((p) => line(`${p.label}: ${p.message}`, "error")),
      ...answer.unprintable.map((m) => line(m, "error")),
    );
    if (!answer.problems.length && !answer.unprintable.length) {
      checks.append(line("No problems found.", "ok"));
    }
    status.textContent = "of the text in the form, not saved yet";
  };

  const refresh = async () => {
    const mine = ++sent;
    status.textContent = "updating…";
    try {
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": token, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`${response.status}`);
      const answer = await response.json();
      if (mine === sent) show(answer);
    } catch (error) {
      if (mine === sent) status.textContent = `could not update (${error.message}): use Preview`;
    }
  };

  // Text, selects and checkboxes all fire "input".
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
});
