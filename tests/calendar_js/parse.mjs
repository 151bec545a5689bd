// Reads a JSON list of iCalendar texts on stdin; prints what Mozilla's ical.js reads in each.
import ICAL from "ical.js";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const texts = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const read = (text) => {
  const calendar = new ICAL.Component(ICAL.parse(text));
  const refresh = calendar.getFirstProperty("refresh-interval");
  return {
    method: calendar.getFirstPropertyValue("method"),
    name: calendar.getFirstPropertyValue("x-wr-calname"),
    refresh: refresh ? refresh.getFirstValue().toString() : null,
    events: calendar.getAllSubcomponents("vevent").map((component) => {
      const event = new ICAL.Event(component);
      return {
        uid: event.uid,
        sequence: event.sequence,
        status: component.getFirstPropertyValue("status"),
        start: event.startDate.toJSDate().toISOString(),
        url: component.getFirstPropertyValue("url"),
        alarms: component.getAllSubcomponents("valarm").length,
      };
    }),
  };
};

process.stdout.write(JSON.stringify(texts.map(read)));
