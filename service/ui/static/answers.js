// A causal LM's answer: a chip per answer token (its log-probability as title) and a card per method with the
// prompt coloured by the scores of the whole answer's log-probability. A click on a token's chip recolours every
// card by that token's row of `scores`; a second click, or the "whole answer" chip, goes back.

import { element } from "./params.js";
import { diagnosticName, fixed, methodCaption, paintTokens, termList, tokenParagraph } from "./results.js";

const WHOLE = -1;
const sum = (values) => values.reduce((total, v) => total + v, 0);

function chip(text, index, logProb) {
  const title = `log p = ${fixed(logProb)}`;
  return element("button", { type: "button", class: "answer-token", "data-index": index, title }, text);
}

// The numbers under a card: what its colours explain, and the diagnostics of that token (of the whole answer:
// their sum, since the whole answer's scores are the sums of the tokens').
function numbers(answer, explanation, chosen) {
  const token = answer.tokens[chosen];
  const rows = [["explains", token ? `"${token.text.trim()}", log p = ${fixed(token.log_prob)}` : "the whole answer"]];
  for (const [name, values] of Object.entries(explanation.diagnostics ?? {})) {
    rows.push([diagnosticName(name), fixed(token ? values[chosen] : sum(values), 4)]);
  }
  return termList(rows);
}

export function fillAnswers(column, { response, display }) {
  column.querySelector("progress")?.remove();
  const { prompt, answer, explanations } = response.results[0];
  let chosen = WHOLE;
  let shown = display;
  const whole = chip("whole answer", "whole", answer.log_prob);
  const chips = answer.tokens.map((token, i) => chip(token.text.trim() || token.text, i, token.log_prob));
  whole.addEventListener("click", () => choose(WHOLE));
  chips.forEach((button, i) => button.addEventListener("click", () => choose(i === chosen ? WHOLE : i)));
  const list = element("ol", { class: "answer-tokens", title: "the answer's tokens: pick one to see its scores" });
  for (const button of [whole, ...chips]) list.append(element("li", {}, button));
  const source = answer.generated ? "the model's own answer" : "the given answer";
  const note = element("p", { class: "answer-note" }, `${source}, log p = ${fixed(answer.log_prob)}`);

  const grid = element("div", { class: "grid" });
  column.items = explanations.map((explanation) => {
    const { paragraph, spans } = tokenParagraph(prompt.text, prompt.tokens);
    let facts = numbers(answer, explanation, chosen);
    const figure = element(
      "figure",
      { class: "card", "data-method": explanation.method.name },
      methodCaption(explanation.method),
      paragraph,
      facts,
    );
    grid.append(figure);
    return {
      draw(settings) {
        shown = settings;
        // Diverging colours around 0, as the text classifier's view (and the server's html) colours a text.
        paintTokens(spans, chosen === WHOLE ? explanation.answer_scores : explanation.scores[chosen], settings, true);
        paragraph.dataset.answerToken = chosen === WHOLE ? "whole" : String(chosen);
        const next = numbers(answer, explanation, chosen);
        facts.replaceWith(next);
        facts = next;
      },
    };
  });

  function choose(i) {
    chosen = i;
    whole.setAttribute("aria-pressed", String(i === WHOLE));
    chips.forEach((button, j) => button.setAttribute("aria-pressed", String(j === i)));
    for (const item of column.items) item.draw(shown);
  }
  column.append(note, list, grid);
  choose(WHOLE);
}
