/**
 * Log lines for the CLI's own messages, in Node-RED's console format (`24 Nov 23:56:21 - [info] ...`)
 * so one parser reads the whole stdout of a gateway.
 */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

type Level = 'info' | 'warn' | 'error';

function line(level: Level, message: string): string {
  const now = new Date();
  const time = [now.getHours(), now.getMinutes(), now.getSeconds()].map((part) => String(part).padStart(2, '0')).join(':');
  return `${now.getDate()} ${MONTHS[now.getMonth()]} ${time} - [${level}] [uns-edge] ${message}`;
}

export const log = {
  info: (message: string): void => console.log(line('info', message)),
  warn: (message: string): void => console.log(line('warn', message)),
  error: (message: string): void => console.error(line('error', message)),
};
