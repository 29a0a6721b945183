// Show only the fields that apply to the kind of signer chosen.
// Without JavaScript every field stays visible, each with its hint.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector(".sign-on form");
  if (!form) return;
  const update = () => {
    const kind = form.querySelector("input[name=kind]:checked")?.value;
    for (const el of form.querySelectorAll(".for-organization")) el.hidden = kind === "individual";
    for (const el of form.querySelectorAll(".for-individual")) el.hidden = kind === "organization";
  };
  form.addEventListener("change", update);
  update();
});
