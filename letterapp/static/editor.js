// The editor's live preview: 400 ms after the last keystroke, the form is posted
// (with its CSRF token) to the preview endpoint, and the letter, its note problems
// and the characters no font can draw replace the preview beside the form.
// Without JavaScript the Preview button does the same with a page load.
// The PDF button posts the form to the PDF endpoint and shows the page images it
// answers in place; without JavaScript it reloads the page with them.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("letter-editor");
  if (!form) return;
  const letter = document.getElementById("preview-letter");
  const checks = document.getElementById("preview-checks");
  const status = document.getElementById("preview-status");
  const token = form.querySelector("input[name=csrf_token]").value;
  const pdf = {
    button: document.getElementById("pdf-button"),
    section: document.getElementById("pdf-preview"),
    status: document.getElementById("pdf-status"),
    error: document.getElementById("pdf-error"),
    images: document.getElementById("pdf-images"),
  };
  const pdfNote = pdf.status.textContent;
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
    // Drawing the PDF costs seconds of CPU: it waits for the button.
    if (pdf.section.dataset.shows === "pages") {
      pdf.status.textContent = "of an earlier text: press the PDF preview button to update";
    }
  });

  const showPages = (answer) => {
    pdf.images.replaceChildren(
      ...answer.pages.map((src, index) => {
        const image = document.createElement("img");
        image.src = src; // a data:image/png URL made by the server
        image.alt = `Page ${index + 1} of the PDF`;
        image.width = 357;
        return image;
      }),
    );
    pdf.error.hidden = !answer.error;
    pdf.error.textContent = answer.error ? `The PDF cannot be made: ${answer.error}` : "";
    pdf.section.dataset.shows = answer.error ? "error" : "pages";
    pdf.status.textContent = pdfNote;
  };

  const renderPdf = async () => {
    pdf.section.hidden = false;
    pdf.section.classList.add("rendering");
    pdf.section.setAttribute("aria-busy", "true");
    pdf.button.disabled = true;
    pdf.status.textContent = "Rendering…";
    try {
      const response = await fetch(form.dataset.pdfUrl, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-CSRFToken": token, Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(`${response.status}`);
      showPages(await response.json());
    } catch (error) {
      showPages({ pages: [], error: `the server did not answer (${error.message}); try again` });
    } finally {
      pdf.section.classList.remove("rendering");
      pdf.section.removeAttribute("aria-busy");
      pdf.button.disabled = false;
    }
  };

  pdf.section.dataset.shows = pdf.images.children.length ? "pages" : "";
  pdf.button.addEventListener("click", (event) => {
    event.preventDefault(); // the page stays; only the PDF section changes
    renderPdf();
  });
});
