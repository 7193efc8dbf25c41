// Open an .xlsx with exceljs, type one cylinder row into the first sheet, save it elsewhere:
// what a web tool built on exceljs does with the downloaded template.
// Usage: node roundtrip.js IN.xlsx OUT.xlsx '<JSON array of cell values>'
const ExcelJS = require("exceljs");

(async () => {
  const [input, output, row] = process.argv.slice(2);
  const workbook = new ExcelJS.Workbook();
  await workbook.xlsx.readFile(input);
  const sheet = workbook.getWorksheet("气瓶信息");
  JSON.parse(row).forEach((value, index) => { sheet.getCell(2, index + 1).value = value; });
  await workbook.xlsx.writeFile(output);
  console.log(JSON.stringify({ sheets: workbook.worksheets.map((w) => w.name) }));
})().catch((error) => { console.error(error.stack || String(error)); process.exit(1); });
