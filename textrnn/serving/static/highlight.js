// An explanation as highlighted words, shared by textrnn serve's page (inlined) and the static web page:
// green pushes toward the label, red away from it, the strongest token at full colour. Integrated
// gradients (the server) are shares of the label's logit; occlusion (the static page, which has no
// gradients) is how much the label's probability falls when the word is deleted.
function showExplanation(box, e) {
  box.replaceChildren();
  if (!e) return;
  const peak = Math.max(1e-9, ...e.attributions.map(Math.abs));
  e.tokens.forEach((token, i) => {
    const a = e.attributions[i], span = document.createElement("span");
    span.className = "token";
    span.textContent = token;
    span.title = `${a.toFixed(3)}` + (e.attention ? `, attention ${e.attention[i].toFixed(3)}` : "");
    span.dataset.attribution = a;
    span.style.background = `rgba(${a >= 0 ? "40,160,70" : "210,50,50"},${(Math.abs(a) / peak).toFixed(2)})`;
    box.append(span, " ");
  });
  const note = document.createElement("div");
  note.className = "note";
  const sum = e.attributions.reduce((x, y) => x + y, 0).toFixed(3);
  note.textContent = e.method === "occlusion"
    ? `how much the probability of "${e.label}" (${e.score.toFixed(3)}) falls when each word is deleted`
    : `attributions to "${e.label}" (sum ${sum}, score change ${(e.score - e.baseline_score).toFixed(3)})`;
  box.append(note);
}
