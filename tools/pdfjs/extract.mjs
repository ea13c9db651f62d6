// The text pdf.js extracts from a PDF, as a viewer's search and copy see it: each page's text
// items in content order, a newline where pdf.js ends a line, pages separated by form feeds.
// Usage: node tools/pdfjs/extract.mjs FILE.pdf
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

console.log = console.error; // pdf.js warns on stdout (no canvas here: rendering is not used)
const { getDocument } = await import("pdfjs-dist/legacy/build/pdf.mjs");

const fonts = join(dirname(fileURLToPath(import.meta.url)), "node_modules/pdfjs-dist/standard_fonts/");
const data = new Uint8Array(readFileSync(process.argv[2]));
const doc = await getDocument({ data, standardFontDataUrl: fonts, isEvalSupported: false, verbosity: 0 }).promise;
const pages = [];
for (let n = 1; n <= doc.numPages; n++) {
  const page = await doc.getPage(n);
  // disableNormalization: the characters as the PDF maps them (pdf.js would turn µ into μ)
  const content = await page.getTextContent({ disableNormalization: true });
  pages.push(content.items.map((item) => item.str + (item.hasEOL ? "\n" : "")).join(""));
}
process.stdout.write(pages.join("\f"));
