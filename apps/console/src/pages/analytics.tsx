export const AnalyticsPage = (_: { search: URLSearchParams }) => <h1>Analytics</h1>;
